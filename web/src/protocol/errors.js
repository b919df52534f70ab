

// ---------------------------------------------------------------------------------------------
// Errors (mirroring the doc's names: InvalidEncoding, VerificationError with a stable `check`)

export class InvalidEncoding extends Error {}

export class VerificationError extends Error {
  constructor(check, message, subject = null, cause = undefined) {
    super(`${check}: ${message}${subject ? ` (${subject})` : ''}`, cause ? { cause } : undefined);
    this.check = check;
    this.subject = subject;
  }
}

