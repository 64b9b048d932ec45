// Generated from package.json by scripts/build.mjs; test/package.test.ts checks that they agree.
export const VERSION = '0.1.0';
