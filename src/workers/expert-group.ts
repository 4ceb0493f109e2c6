// The miner's expert group as the task folder describes it (PROTOCOL.md §8.1): `group_id` from
// `<task.path>/config.yaml` (default 0, as the reference) and `expert_assignment.json`. The trainer
// reads the same folder; the workers need the group id (the `e` of commits, the file name) and the
// assignment (the expert-id check of downloaded baselines).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseExpertAssignment, type ExpertAssignment } from '../protocol/experts.js';
import { WorkerError } from './errors.js';

export interface WorkerExpertGroup {
  groupId: number;
  assignment: ExpertAssignment;
  path: string;
}

export async function readExpertGroup(taskPath: string): Promise<WorkerExpertGroup> {
  const cfgFile = join(taskPath, 'config.yaml');
  let groupId = 0;
  let text: string | null = null;
  try {
    text = await readFile(cfgFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new WorkerError('CNM_ERR_EXPERT_GROUP', `cannot read ${cfgFile}: ${(e as Error).message}`, { cause: e });
    }
  }
  if (text !== null) {
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      throw new WorkerError('CNM_ERR_EXPERT_GROUP', `${cfgFile} is not valid YAML (${(e as Error).message})`, { cause: e });
    }
    const g = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>).group_id : undefined;
    if (g !== undefined) {
      if (!Number.isSafeInteger(g) || (g as number) < 0) {
        throw new WorkerError('CNM_ERR_EXPERT_GROUP', `${cfgFile}: group_id must be a non-negative integer, got ${JSON.stringify(g)}`);
      }
      groupId = g as number;
    }
  }
  const file = join(taskPath, 'expert_assignment.json');
  let json: string;
  try {
    json = await readFile(file, 'utf8');
  } catch (e) {
    throw new WorkerError(
      'CNM_ERR_EXPERT_GROUP',
      `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); set task.path / task.expert_group_name in config.yaml to the expert-group folder`,
      { cause: e },
    );
  }
  try {
    return { groupId, assignment: parseExpertAssignment(json, file), path: taskPath };
  } catch (e) {
    throw new WorkerError('CNM_ERR_EXPERT_GROUP', (e as Error).message, { cause: e });
  }
}
