const { double } = require('./calc');

describe('double', () => {
  test('doubles', () => expect(double(2)).toBe(4));
  test('is a function', () => expect(typeof double).toBe('function'));
});
