/**
 * The per-service health servers of healthCheckNodePort, as kube-proxy serves them
 * (pkg/proxy/healthcheck): any path answers JSON
 *   {"service":{"namespace":"x","name":"web"},"localEndpoints":2,"serviceProxyHealthy":true}
 * with 200 while the service has ready backends on this node, 503 while it has none. A
 * load balancer health-checks every node and sends traffic only where it gets 200.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { HealthCheck } from '../src/services/health-checks.js';

export class HealthCheckServers {
  /** Per port: a server on each address, and the check they answer. */
  private readonly servers = new Map<number, { servers: Server[]; check: HealthCheck }>();

  /** @param hosts the addresses to serve on (the uplink's of each family, or 0.0.0.0) */
  constructor(
    private readonly hosts: readonly string[],
    private readonly log: Logger,
  ) {}

  /** Serves exactly `checks`: new ports start listening, gone ones close, counts update at once. */
  async sync(checks: readonly HealthCheck[]): Promise<void> {
    const want = new Map(checks.map((c) => [c.port, c]));
    for (const [port, s] of this.servers) {
      if (want.get(port)?.namespace === s.check.namespace && want.get(port)?.name === s.check.name) continue;
      for (const server of s.servers) server.close();
      this.servers.delete(port);
    }
    for (const [port, check] of want) {
      const have = this.servers.get(port);
      if (have) {
        have.check = check;
        continue;
      }
      const entry: { servers: Server[]; check: HealthCheck } = { servers: [], check };
      for (const host of this.hosts) {
        const server = createServer((_req, res) => this.answer(entry.check, res));
        try {
          await listen(server, host, port);
          entry.servers.push(server);
        } catch (err) {
          this.log.error({ port, host, service: `${check.namespace}/${check.name}`, err: (err as Error).message }, 'health check port not served');
        }
      }
      if (entry.servers.length > 0) {
        this.servers.set(port, entry);
        this.log.info({ port, hosts: this.hosts, service: `${check.namespace}/${check.name}` }, 'serving health check');
      }
    }
  }

  private answer(c: HealthCheck, res: import('node:http').ServerResponse): void {
    const body = { service: { namespace: c.namespace, name: c.name }, localEndpoints: c.localEndpoints, serviceProxyHealthy: true };
    res.writeHead(c.localEndpoints > 0 ? 200 : 503, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
    res.end(`${JSON.stringify(body)}\n`);
  }

  close(): void {
    for (const s of this.servers.values()) for (const server of s.servers) server.close();
    this.servers.clear();
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
