import type { CniErrorCode } from '../../contract/cni.ts';

// A CNI error (spec 1.1 §"Error"): {cniVersion, code, msg, details} on stdout and
// a non-zero exit. The codes are contract/cni.ts's CNI_ERR.

export class CniError extends Error {
  constructor(
    readonly code: CniErrorCode,
    message: string,
    readonly details = '',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CniError';
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}
