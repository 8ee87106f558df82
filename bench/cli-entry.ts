/** The CLI exactly as bin/volume-backup.js runs it, resolved relative to this compiled file. */
import { main } from '../lib/cli/main';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
