// Splits a byte stream of concatenated JSON objects into values.
//
// OVSDB JSON-RPC (RFC 7047 §2, ovsdb-server(7) §4) has no length prefix and no
// delimiter: a message ends where its top-level object closes. lib/jsonrpc.c
// feeds bytes into a streaming json_parser until it reports "done"; we only
// need to find that point, so we track nesting depth and string/escape state
// and leave real parsing to JSON.parse once a value is complete.
//
// Closers are matched against a small stack, so "{]" fails at once rather
// than leaving us waiting for a brace that balances the count.
//
// Every byte is scanned exactly once: state survives across push() calls and
// partial values are kept as a list of chunk slices, concatenated only when
// the value completes, so a message of n bytes costs O(n) however it is split.

import { isUtf8 } from 'node:buffer';
import { MessageTooLargeError, ProtocolError } from '../errors.ts';

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

// lib/json.c refuses input nested deeper than JSON_MAX_HEIGHT (1000); JSON.parse
// would instead overflow the stack on a hostile peer's "[[[[…".
export const MAX_NESTING_DEPTH = 1000;

export interface JsonStreamParserOptions {
  /** Largest single message accepted, in bytes (default 64 MiB). */
  maxMessageBytes?: number;
}

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

export class JsonStreamParser {
  readonly maxMessageBytes: number;

  // Scanner state, carried across push() calls.
  #depth = 0;
  // Expected closing byte per open level (index 0 = the top-level '}').
  readonly #closers = new Uint8Array(MAX_NESTING_DEPTH);
  #inString = false;
  #escaped = false;

  // Bytes of the value in progress that arrived in earlier chunks.
  #parts: Buffer[] = [];
  #partsBytes = 0;

  #failed = false;

  constructor(opts: JsonStreamParserOptions = {}) {
    const max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!Number.isSafeInteger(max) || max <= 0) {
      throw new RangeError(`maxMessageBytes must be a positive integer, got ${max}`);
    }
    this.maxMessageBytes = max;
  }

  /** Bytes held for the value currently being received (0 between values). */
  get bufferedBytes(): number {
    return this.#partsBytes;
  }

  /**
   * Feeds the next chunk; returns every value completed by it, in order.
   * Throws ProtocolError / MessageTooLargeError; after that the parser is
   * poisoned, because the stream position is lost and the connection must go.
   */
  push(chunk: Buffer): unknown[] {
    if (this.#failed) {
      throw new ProtocolError('JSON stream parser used after an earlier error');
    }
    try {
      return this.#scan(chunk);
    } catch (err) {
      this.#failed = true;
      this.#parts = [];
      this.#partsBytes = 0;
      throw err;
    }
  }

  #scan(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    const max = this.maxMessageBytes;
    const n = chunk.length;
    let depth = this.#depth;
    let inString = this.#inString;
    let escaped = this.#escaped;
    const closers = this.#closers;
    // Start of the value in progress within this chunk (0 when it began in an
    // earlier one), or -1 between values.
    let start = depth > 0 ? 0 : -1;

    for (let i = 0; i < n; i++) {
      const c = chunk[i]!;
      if (depth === 0) {
        if (c === SPACE || c === LF || c === CR || c === TAB) continue;
        // jsonrpc_msg_from_json(): "message is not a JSON object".
        if (c !== LBRACE) {
          throw new ProtocolError(
            `expected '{' at the start of a JSON-RPC message, got byte 0x${c.toString(16).padStart(2, '0')}`,
          );
        }
        closers[0] = RBRACE;
        depth = 1;
        start = i;
        continue;
      }
      if (inString) {
        // Multi-byte UTF-8 sequences only contain bytes >= 0x80, so they can
        // never be mistaken for a quote or backslash here.
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) inString = false;
        continue;
      }
      switch (c) {
        case QUOTE:
          inString = true;
          break;
        case LBRACE:
        case LBRACKET:
          if (depth >= MAX_NESTING_DEPTH) {
            throw new ProtocolError(`JSON nesting deeper than ${MAX_NESTING_DEPTH}`);
          }
          closers[depth++] = c === LBRACE ? RBRACE : RBRACKET;
          break;
        case RBRACE:
        case RBRACKET:
          if (closers[--depth] !== c) {
            throw new ProtocolError(`mismatched '${String.fromCharCode(c)}' in JSON-RPC message`);
          }
          if (depth === 0) {
            const end = i + 1;
            const size = this.#partsBytes + (end - start);
            if (size > max) throw new MessageTooLargeError(max);
            out.push(this.#decode(chunk.subarray(start, end), size));
            start = -1;
          }
          break;
        default:
          break;
      }
    }

    this.#depth = depth;
    this.#inString = inString;
    this.#escaped = escaped;

    if (depth > 0) {
      const tail = chunk.subarray(start);
      this.#partsBytes += tail.length;
      // Checked per chunk so an endless value is refused after at most one
      // chunk beyond the limit, never after buffering all of it.
      if (this.#partsBytes > max) throw new MessageTooLargeError(max);
      // Keep a view, not a copy: the slice is read once at completion.
      this.#parts.push(tail);
    }
    return out;
  }

  #decode(last: Buffer, size: number): unknown {
    let bytes = last;
    if (this.#parts.length > 0) {
      this.#parts.push(last);
      bytes = Buffer.concat(this.#parts, size);
      this.#parts = [];
      this.#partsBytes = 0;
    }
    // lib/json.c rejects invalid UTF-8; Buffer#toString would silently
    // substitute U+FFFD and hand us a different string than the peer sent.
    if (!isUtf8(bytes)) {
      throw new ProtocolError(`invalid UTF-8 in ${size}-byte JSON-RPC message`);
    }
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      // The SyntaxError quotes the payload; keep it out of the message (and
      // so out of logs) and report only where it broke.
      const detail = err instanceof Error ? /position \d+/.exec(err.message)?.[0] : undefined;
      throw new ProtocolError(
        `invalid JSON in ${size}-byte JSON-RPC message${detail ? ` at ${detail}` : ''}`,
      );
    }
  }
}
