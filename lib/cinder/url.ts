/** Which repository URLs name a Cinder store (kept apart so that lib/open.ts loads no Cinder code for others). */
export function isCinderUrl(url: string): boolean {
  return /^cinder(\+[a-z][a-z0-9+.-]*)?:/i.test(url);
}
