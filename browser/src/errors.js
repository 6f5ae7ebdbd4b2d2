// Errors whose message is written for the user; anything else is a bug and gets a generic one.

export class UserError extends Error {}

/** An HTTP answer that was not 2xx, with what the caller needs to decide on a retry. */
export class ApiError extends UserError {
  /**
   * @param {string} message
   * @param {number} status
   * @param {number | null} retryAfter seconds, from Retry-After
   */
  constructor(message, status, retryAfter = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}
