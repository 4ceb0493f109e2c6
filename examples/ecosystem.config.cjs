// pm2 process file for connito-miner: `pm2 start examples/ecosystem.config.cjs`.
// Copy it, set RUN_DIR (a directory made by `connito-miner init --path RUN_DIR`), one app per run
// directory. The supervisor inside restarts the trainer itself; pm2 only restarts the supervisor.
const path = require('node:path');

const RUN_DIR = process.env.CONNITO_RUN_DIR || '/srv/connito/miner1';

module.exports = {
  apps: [
    {
      name: `connito-miner-${path.basename(RUN_DIR)}`,
      script: path.join(__dirname, '..', 'bin', 'connito-miner.js'),
      args: ['start', '--path', RUN_DIR],
      cwd: RUN_DIR,
      exec_mode: 'fork', // one supervisor per run directory; never cluster mode
      instances: 1,
      env: { CONNITO_LOG_FORMAT: 'json', NODE_ENV: 'production' },
      // The supervisor sends 'ready' once the trainer is up and the task pool runs.
      wait_ready: true,
      listen_timeout: 600000,
      // pm2 stops with SIGINT, which the supervisor treats like SIGTERM: final save, exit 0.
      // Give it longer than supervisor.shutdown_timeout_sec (300 s by default) before SIGKILL.
      kill_timeout: 360000,
      // Signal the supervisor only: it stops the trainer itself (as KillMode=mixed under systemd).
      treekill: false,
      autorestart: true,
      restart_delay: 30000,
      max_restarts: 10,
      min_uptime: 60000,
      merge_logs: true,
      time: false, // log lines carry their own timestamps
    },
  ],
};
