import { LivemigError } from '../../src/errors.js';

/** The LivemigError a promise rejects with; fails the test if it resolves or throws anything else. */
export async function rejection(promise: Promise<unknown>): Promise<LivemigError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof LivemigError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}
