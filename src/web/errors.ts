// Errors the web edge answers with: a status, a stable code and a message that says what to do.
// The API renders them as { "error": { "code", "message" } }; pages as a short HTML page.
import type { ErrorCode } from '../model/errors.js';

export type WebErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'CSRF_INVALID'
  | 'NOT_FOUND'
  | 'BAD_REQUEST'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_REQUESTS'
  | 'INTERNAL';

export class WebError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: WebErrorCode | ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WebError';
  }
}

/** The HTTP status for each error the client raises on purpose. */
export const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  INVALID_INPUT: 400,
  UNKNOWN_TASK: 400,
  UNKNOWN_PREREQUISITE: 400,
  CONFIG_INVALID: 400,
  TASK_NOT_FOUND: 404,
  INVALID_TRANSITION: 409,
  WAIT_TIMEOUT: 504,
  DATABASE_UNREACHABLE: 503,
  DATABASE_BUSY: 503,
  SCHEMA_TOO_NEW: 503,
};

export interface ErrorBody {
  error: { code: string; message: string };
}
