// The one error the tar reader throws: where Go's archive/tar would fail,
// with the category of Go's error so tests can compare the two readers.
import { DmthinError } from '../../shared/errors';

/**
 * Go's error, as a category: tar.ErrHeader, io.ErrUnexpectedEOF,
 * tar.ErrFieldTooLong, and the sparse file's missing/unreferenced data.
 */
export type GoTarError = 'header' | 'unexpected-eof' | 'field-too-long' | 'missing-data' | 'unreferenced-data';

/** What a parsing step found wrong, before the reader adds where it was. */
export class TarFault extends Error {
  constructor(
    readonly goError: GoTarError,
    message: string,
    /** true where Go would read on but dmthin refuses (numbers past 2^53, a sparse map past the limits) */
    readonly beyondGo = false,
  ) {
    super(message);
  }
}

export class TarError extends DmthinError {
  constructor(
    message: string,
    readonly goError: GoTarError,
    /** 0-based position of the entry in the stream (Go's count of Next() calls) */
    readonly entryIndex: number,
    /** the entry's name as far as it was read (binary string), or null before any */
    readonly entryName: string | null,
    readonly beyondGo: boolean,
  ) {
    super('EBADTAR', message);
  }
}

/** A binary (latin1) name as a user can read it in a message: quoted, escaped, shortened. */
export function printableName(name: string): string {
  const shown = name.length > 200 ? `${name.slice(0, 200)}...` : name;
  return JSON.stringify(shown).replace(/[\u007f-\u00ff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
