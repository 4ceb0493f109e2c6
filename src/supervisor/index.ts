// The supervisor's public API (used by the CLI, the devnet and the phase clock plug-in).
export { AlreadyRunningError, SupervisorError, type SupervisorErrorCode } from './errors.js';
export { acquirePidLock, pidFilePath, readPidFile, readRunState, type PidFileState, type PidLock, type RunState } from './pidfile.js';
export { DEFAULT_POOL_ENTRY, DEFAULT_TASK_MODULES, DEFAULT_TRAINER_ENTRY, runSupervisor, trainerEntryOf, type RunSupervisorOptions } from './run.js';
export { Notifier } from './sdnotify.js';
export { buildStatusServer, type Health, type StatusSource } from './status-server.js';
export {
  Supervisor,
  type DutyOutcome,
  type PhaseInfo,
  type PluginContext,
  type SupervisorOptions,
  type SupervisorPlugin,
  type SupervisorResult,
} from './supervisor.js';
export { TaskPool, type DispatchOptions, type RunningTask, type TaskMap, type TaskOutcome } from './task-pool.js';
export { TrainerProcess, type ExitReason, type TrainerExit, type TrainerState } from './trainer-process.js';
export { renderSystemdUnit, type SystemdUnitOptions } from './systemd-unit.js';
export { PhaseClock, configSchedule, type PhaseClockOptions, type ScheduleSource } from './phase-clock.js';
export { OwnerApi, type OwnerApiOptions } from './owner-api.js';
export { DUTY_SPECS, PhasePlanner, dutyWindow, windowDeadline, type DutySpec, type PlanAction } from './phase-plan.js';
