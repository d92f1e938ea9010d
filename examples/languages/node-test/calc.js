exports.double = (x) => x + x + 1;
