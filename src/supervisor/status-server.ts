// The status server (fastify): /healthz, /status, /metrics and a small status page. `build` is
// separate from `listen` so tests can use `app.inject()`. Handlers only read in-memory state:
// they never wait on training or I/O.
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Logger } from '../telemetry/logger.js';

export interface Health {
  /** 'starting' | 'running' | 'stopping' */
  state: string;
  ready: boolean;
  trainer: string;
}

export interface StatusSource {
  health(): Health;
  snapshot(): unknown;
}

export interface StatusServerOptions {
  source: StatusSource;
  registry: Registry;
  logger?: Logger;
}

export function buildStatusServer(opts: StatusServerOptions): FastifyInstance {
  const app = Fastify({
    ...(opts.logger !== undefined ? { loggerInstance: opts.logger.child({ component: 'status-server' }) } : {}),
    // Scrapes every few seconds would drown the log: request lines off, errors still logged.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  });
  app.get('/healthz', async (_req, reply) => {
    const h = opts.source.health();
    return reply.code(h.ready ? 200 : 503).send({ ok: h.ready, ...h });
  });
  app.get('/status', async () => opts.source.snapshot());
  app.get('/metrics', async (_req, reply) => {
    const body = await opts.registry.metrics();
    return reply.type(opts.registry.contentType).send(body);
  });
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(STATUS_PAGE));
  return app as unknown as FastifyInstance;
}

const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>connito-miner</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
h1{font-size:1.3em}table{border-collapse:collapse}td{padding:.2em 1em .2em 0;vertical-align:top}
td:first-child{color:#666}.ok{color:#070}.bad{color:#b00}pre{background:#f6f6f6;padding:1em;overflow:auto}
</style></head><body>
<h1>connito-miner</h1>
<table id="t"></table>
<p><a href="/status">/status</a> · <a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a></p>
<script>
const rows = (s) => {
  const t = s.trainer || {}, p = t.progress || {}, ph = s.phase || {};
  return [
    ['state', s.state], ['uptime', s.uptimeSec + ' s'],
    ['phase', ph.name ? ph.name + ' (block ' + ph.block + ', ' + ph.blocksRemaining + ' left)' : 'unknown'],
    ['trainer', (t.state || '') + (t.pid ? ' pid ' + t.pid : '') + ' · restarts ' + (t.restarts || 0)],
    ['step / loss', p.step === undefined ? '–' : p.step + ' / ' + p.loss],
    ['lr · tokens/s', p.lr === undefined ? '–' : p.lr + ' · ' + p.tokensPerSec],
    ['last checkpoint', t.lastCheckpoint ? t.lastCheckpoint.path : '–'],
    ...Object.entries(s.duties || {}).map(([k, v]) => [k, (v.ok ? '✓ ' : '✗ ') + (v.detail || '') + ' (' + v.at + ')']),
  ];
};
async function refresh() {
  try {
    const s = await (await fetch('/status')).json();
    document.getElementById('t').innerHTML = rows(s).map(([k, v]) => '<tr><td>' + k + '</td><td>' + String(v).replace(/</g, '&lt;') + '</td></tr>').join('');
  } catch (e) { document.getElementById('t').innerHTML = '<tr><td class="bad">unreachable</td></tr>'; }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
`;
