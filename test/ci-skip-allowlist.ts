/**
 * The tests CI may skip, each with the reason it cannot run there. Under CI=true every other skipped or
 * pending test fails the run (test/helpers/ci-skips.ts). A title is the test's full title, as mocha
 * prints it (the describe titles, then the test's, joined by spaces).
 */
export interface AllowedSkip {
  /** The full title, exactly, or a pattern for titles with a variable part. */
  title: string | RegExp;
  reason: string;
}

export const CI_SKIP_ALLOWLIST: AllowedSkip[] = [
  {
    // The CI machine's temporary directory may be on btrfs or XFS: then auto picks a cloning provider for a
    // file there, which the loop-device tests cover; the copy fallback is what is skipped.
    title: 'snapshot providers copy and auto auto: picks the first provider that applies and says which and why not the others',
    reason: 'only runs where the temporary directory is on a file system without snapshots or reflinks',
  },
  {
    // No device-mapper (and no volume group) in CI: the lvm provider is checked through a recording runner, and
    // that needs only a block device node to stand for a logical volume.
    title: /^snapshot providers lvm \(commands checked through a recording runner; no device-mapper here\) /,
    reason: 'LVM: no device-mapper in CI; a block device node to stand for a logical volume may be missing',
  },
];
