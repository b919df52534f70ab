// The library's errors (docs/protocol.md's names). Everything it refuses throws one of two:
//
//   InvalidEncoding     input that does not decode: bad hex, a non-canonical scalar or point, wrong keys,
//                       a JSON text that breaks the lexical integer rule (§1), a malformed note or receipt
//   VerificationError   input that decodes but fails a named check; `check` is the stable name
//                       (docs/protocol.md in bold, or a receipt check: inclusion, checkpoint-signature, …),
//                       `subject` what it concerns (e.g. "mayor/cand-1") or null
//
// Encryption refuses bad choices with a plain Error whose message starts "ValueError: " (§9.3).

export class InvalidEncoding extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'InvalidEncoding';
    this.check = 'invalid-encoding';
  }
}

export class VerificationError extends Error {
  constructor(check, message, subject = null, cause = undefined) {
    super(`${check}: ${message}${subject ? ` (${subject})` : ''}`, cause ? { cause } : undefined);
    this.name = 'VerificationError';
    this.check = check;
    this.subject = subject;
  }
}
