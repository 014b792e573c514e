import { LocatedError } from '../yaml/located.js';

/**
 * An error in a policy file: `FILE:LINE: field.path[0].sub: detail`. The parser throws
 * them together in one `LocatedErrors`, since a file with any error applies nothing.
 */
export class PolicyError extends LocatedError {
  override name = 'PolicyError';
}
