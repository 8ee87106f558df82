/** Debian's chromium driven by playwright-core, as the editor tests use it: headless, quiet, one page. */
import { existsSync } from 'fs';

export const CHROMIUM = '/usr/bin/chromium';

/** The browser on a profile directory; without chromium the calling hook's tests are skipped, saying why. */
 
export async function launchChromium(hook: Mocha.Context, profileDir: string): Promise<{ context: any; page: any }> {
  if (!existsSync(CHROMIUM)) {
    console.log(`      browser test skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);
    hook.skip();
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { chromium } = require('playwright-core');
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return { context, page: context.pages()[0] ?? (await context.newPage()) };
}
