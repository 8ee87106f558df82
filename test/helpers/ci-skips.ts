/**
 * A mocha root hook plugin (loaded with --require, see .mocharc.json and scripts/test-node-red-5.sh):
 * under CI=true, a run in which any test was skipped or left pending fails at the end, listing them,
 * unless the test is on test/ci-skip-allowlist.ts with its reason. CI installs everything the tests
 * need, so a skip there means a test silently stopped testing. Covers it.skip, describe.skip, tests
 * without a function, this.skip() in a test, and this.skip() in a before hook (a whole suite).
 */
import { readFileSync } from 'fs';
import type { Context, Suite, Test } from 'mocha';
import { AllowedSkip, CI_SKIP_ALLOWLIST } from '../ci-skip-allowlist';

/** Every test of the tree that did not run because it was skipped or is pending. */
export function skippedTests(suite: Suite): Test[] {
  return [...suite.tests.filter((t) => t.isPending()), ...suite.suites.flatMap(skippedTests)];
}

function allows(entry: AllowedSkip, title: string): boolean {
  return typeof entry.title === 'string' ? entry.title === title : entry.title.test(title);
}

/** The titles of skipped tests that no allowlist entry names. */
export function unlistedSkips(root: Suite, allowlist: AllowedSkip[]): string[] {
  return skippedTests(root).map((t) => t.fullTitle()).filter((title) => !allowlist.some((e) => allows(e, title)));
}

/** CI_SKIP_ALLOWLIST_FILE (JSON: [{title, reason}]) replaces the table: for the check's own test only. */
function allowlist(): AllowedSkip[] {
  const file = process.env.CI_SKIP_ALLOWLIST_FILE;
  return file ? (JSON.parse(readFileSync(file, 'utf8')) as AllowedSkip[]) : CI_SKIP_ALLOWLIST;
}

function rootOf(suite: Suite): Suite {
  return suite.parent ? rootOf(suite.parent) : suite;
}

export const mochaHooks = {
  afterAll: function ciSkipCheck(this: Context): void {
    if (process.env.CI !== 'true' || !this.test?.parent) return;
    const unlisted = unlistedSkips(rootOf(this.test.parent), allowlist());
    if (unlisted.length === 0) return;
    throw new Error(
      `CI=true, and ${unlisted.length} test(s) were skipped or pending that test/ci-skip-allowlist.ts does not allow ` +
        `(install what they need, or list them there with the reason they cannot run in CI):\n` +
        unlisted.map((t) => `  - ${t}`).join('\n'),
    );
  },
};
