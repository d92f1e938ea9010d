const test = require('node:test');
const assert = require('node:assert');
const { double } = require('../calc');

test('double doubles', () => assert.strictEqual(double(2), 4));
test('double is a function', () => assert.strictEqual(typeof double, 'function'));
