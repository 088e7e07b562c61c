// containerd's filter expressions for List (filters/parser.go's grammar):
//   selectors := selector ("," selector)*      all must match
//   selector  := fieldpath [("==" | "!=" | "~=") value]   no operator: the field is present
//   fieldpath := field ("." field)*             field: [A-Za-z][A-Za-z0-9_]* or a quoted string
//   value     := quoted | [^\s,]+               quoted: Go string syntax ("..." or `...`)
// Separate filter strings are ORed. The fields of a snapshot are name,
// parent, kind (active|view|committed) and labels.<key>.
import { DmthinError } from '../shared/errors';

type Operator = 'present' | '==' | '!=' | '~=';

interface Selector {
  fieldpath: string[];
  operator: Operator;
  value: string;
  regex: RegExp | null;
}

/** A filter over a snapshot's fields: (fieldpath) -> [value, present]. */
export type FieldReader = (fieldpath: readonly string[]) => [string, boolean];

export type Filter = (read: FieldReader) => boolean;

/** The filter of a List request; an empty list matches everything. Throws EINVAL naming the bad filter. */
export function parseFilters(filters: readonly string[]): Filter {
  const parsed = filters.map(parseFilter);
  if (parsed.length === 0) return () => true;
  return (read) => parsed.some((selectors) => selectors.every((s) => matches(s, read)));
}

function matches(s: Selector, read: FieldReader): boolean {
  const [value, present] = read(s.fieldpath);
  switch (s.operator) {
    case 'present':
      return present;
    case '==':
      return present && value === s.value;
    case '!=':
      return value !== s.value;
    case '~=':
      return s.regex !== null && s.regex.test(value);
  }
}

/** One filter string: its selectors, all to match; the empty string matches everything. */
function parseFilter(input: string): Selector[] {
  if (input === '') return [];
  const scanner = new Scanner(input);
  const selectors: Selector[] = [];
  for (;;) {
    selectors.push(parseSelector(scanner));
    scanner.skipSpace();
    if (scanner.done()) return selectors;
    if (!scanner.take(',')) throw scanner.error('expected ","');
  }
}

function parseSelector(scanner: Scanner): Selector {
  const fieldpath = [scanner.field()];
  for (;;) {
    scanner.skipSpace();
    if (!scanner.take('.')) break;
    fieldpath.push(scanner.field());
  }
  scanner.skipSpace();
  if (scanner.done() || scanner.peek() === ',') return { fieldpath, operator: 'present', value: '', regex: null };
  const operator = scanner.operator();
  const value = scanner.value();
  let regex: RegExp | null = null;
  if (operator === '~=') {
    try {
      regex = new RegExp(value);
    } catch (err) {
      throw scanner.error(`invalid regular expression ${JSON.stringify(value)}: ${(err as Error).message}`);
    }
  }
  return { fieldpath, operator, value, regex };
}

class Scanner {
  private pos = 0;

  constructor(private readonly input: string) {}

  done(): boolean {
    return this.pos >= this.input.length;
  }

  peek(): string {
    return this.input[this.pos] ?? '';
  }

  take(ch: string): boolean {
    if (this.peek() !== ch) return false;
    this.pos++;
    return true;
  }

  skipSpace(): void {
    while (/\s/.test(this.peek()) && !this.done()) this.pos++;
  }

  field(): string {
    this.skipSpace();
    const ch = this.peek();
    if (ch === '"' || ch === '`') return this.quoted();
    const m = /^[A-Za-z][A-Za-z0-9_]*/.exec(this.input.slice(this.pos));
    if (m === null) throw this.error('expected a field or a quoted string');
    this.pos += m[0].length;
    return m[0];
  }

  operator(): Operator {
    const op = this.input.slice(this.pos, this.pos + 2);
    if (op !== '==' && op !== '!=' && op !== '~=') throw this.error('expected an operator ("==", "!=" or "~=")');
    this.pos += 2;
    return op;
  }

  value(): string {
    this.skipSpace();
    const ch = this.peek();
    if (ch === '"' || ch === '`') return this.quoted();
    const m = /^[^\s,]+/.exec(this.input.slice(this.pos));
    if (m === null) throw this.error('expected a value or a quoted string');
    this.pos += m[0].length;
    return m[0];
  }

  /** A Go string literal: `raw`, or "interpreted" with the escapes JSON shares with Go. */
  private quoted(): string {
    const quote = this.peek();
    let end = this.pos + 1;
    while (end < this.input.length && this.input[end] !== quote) end += quote === '"' && this.input[end] === '\\' ? 2 : 1;
    if (end >= this.input.length) throw this.error('unterminated quoted string');
    const literal = this.input.slice(this.pos, end + 1);
    this.pos = end + 1;
    if (quote === '`') return literal.slice(1, -1);
    try {
      return JSON.parse(literal) as string;
    } catch {
      throw this.error(`cannot unquote ${literal}`);
    }
  }

  error(message: string): DmthinError {
    return new DmthinError('EINVAL', `filter ${JSON.stringify(this.input)} at ${this.pos}: ${message}`);
  }
}
