import { LocatedError } from '../yaml/located.js';

/**
 * An error in a Service document: `FILE:LINE: field.path: detail`. A file with any error
 * applies nothing, so the parser reports them all together (one `LocatedErrors`).
 */
export class ServiceError extends LocatedError {
  override name = 'ServiceError';
}
