// Python's `str()` and string ordering, as far as the subnet's hashes depend on them. Hash preimages
// are built from `str(part)` and keys/hotkeys are sorted by code point, so JS defaults (UTF-16 order,
// "1e-7" vs "1e-07") would silently produce other bytes.

/** A value that goes into a hash preimage the way Python would print it. */
export type PyScalar = string | number | bigint | boolean | null | undefined;

/**
 * Python `str(x)`: strings as is, `None`/`True`/`False`, integers in decimal. A JS number that is an
 * integer is taken as a Python int (seeds, blocks and indices are ints on the wire); other numbers as
 * a Python float (`repr`, e.g. `3.5`, `1e-07`, `inf`).
 */
export function pyStr(x: PyScalar): string {
  if (typeof x === 'string') return x;
  if (x === null || x === undefined) return 'None';
  if (typeof x === 'boolean') return x ? 'True' : 'False';
  if (typeof x === 'bigint') return x.toString();
  if (Number.isInteger(x)) return BigInt(x).toString();
  return pyFloatRepr(x);
}

/** Python `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16 on. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mant, expText] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mant.replace('.', '');
  const exp = Number(expText); // value = 0.d1d2... × 10^(exp+1)
  const decpt = exp + 1;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
    if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
    return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = exp < 0 ? `-${String(-exp).padStart(2, '0')}` : `+${String(exp).padStart(2, '0')}`;
  return `${sign}${m}e${e}`;
}

/** Python string comparison (Unicode code points), for `sorted()` of keys and hotkeys. */
export function comparePy(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order differs from code-point order only when one side is a surrogate (astral char)
    // and the other a BMP char at or above U+E000.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? (y >= 0xe000 ? 1 : x - y) : x >= 0xe000 ? -1 : x - y;
    return x - y;
  }
  return a.length - b.length;
}
