// Every test run gets its own temporary root: tests (and the processes they start) make their
// directories under os.tmpdir(), so pointing TMPDIR here lets teardown remove whatever a test
// left behind — a crashed child's run directory included — instead of littering /tmp.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'cnm-test-'));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = root;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    if (process.env.CNM_KEEP_TEST_TMP !== '1') rmSync(root, { recursive: true, force: true });
  };
}
