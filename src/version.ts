// Generated from package.json by scripts/build.mjs; test/consumer.test.ts checks that they agree.
export const VERSION: string = '0.1.0';
