/**
 * Control characters in text a user reads. Names, descriptions, hosts and paths come from users,
 * imported records and other hosts: printed raw, a control character can retitle a terminal, clear
 * it or fake output, and a bidi override can make text read differently from what it is. Input is
 * refused (hasControlCharacters); output escapes what still gets through (escapeControl).
 */

/** C0 (tab and newline included), DEL, C1, and the bidi embeddings/overrides/isolates. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const CONTROL_ALL = new RegExp(CONTROL.source, 'g');

export const CONTROL_CHARACTERS_MESSAGE = 'contains control characters (C0/C1 controls, DEL or bidi overrides)';

export function hasControlCharacters(text: string): boolean {
  return CONTROL.test(text);
}

/**
 * `text` with every control character written as a \uXXXX escape: visible, one line, and inside a
 * JSON string the same text again. Everything human-readable goes through this before it is shown.
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROL_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One line for a message or a status: whitespace runs (newlines included) become one space, then escaped. */
export function oneLine(text: string): string {
  return escapeControl(text.replace(/\s*[\r\n]+\s*/g, ' ').trim());
}

/**
 * A value from a user (a setting, a record field, an abort reason) as text for a message: strings as they
 * are, anything else as JSON, because String() of an object prints "[object Object]".
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint' || typeof value === 'symbol' || typeof value === 'function') return value.toString();
  try {
    return JSON.stringify(value) ?? 'undefined';
  } catch {
    return '(a value that cannot be shown)'; // circular
  }
}
