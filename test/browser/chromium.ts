/**
 * Debian's chromium driven by playwright-core, as the browser tests use it: skipped (saying why) when it
 * is not installed; a fresh profile each time; page errors collected for the test to check.
 */
import { existsSync, promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { BrowserContext, Page } from 'playwright-core';
import { PACKAGE_ROOT } from './sidebar-node-red';

export const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// UPDATE_SCREENSHOTS=1 refreshes the committed ones (docs/screenshots); otherwise they go to the git-ignored test-output/.
export const SCREENSHOTS = path.join(PACKAGE_ROOT, ...(process.env.UPDATE_SCREENSHOTS ? ['docs', 'screenshots'] : ['test-output', 'screenshots']));

/** Skips the suite (from its `before` hook) when chromium is missing; true when it may go on. */
export function chromiumOrSkip(ctx: Mocha.Context): boolean {
  if (existsSync(CHROMIUM)) return true;
  console.log(`    (skipped: ${CHROMIUM} is missing; apt-get install chromium)`);
  ctx.skip();
  return false;
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Uncaught errors of the page's scripts, in order. */
  pageErrors: string[];
}

export async function openBrowser(viewport: { width: number; height: number }): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const context = await chromium.launchPersistentContext(await fs.mkdtemp(path.join(os.tmpdir(), 'vb-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await fs.mkdir(SCREENSHOTS, { recursive: true });
  return { context, page, pageErrors };
}
