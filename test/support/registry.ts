// A real registry on 127.0.0.1:5000 (Debian's docker-registry, distribution
// 2.8), storing under a test's directory. dockerd trusts loopback
// registries over plain HTTP, so plugins push to and install from it.
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startLogged, waitUntil, type Started } from './processes';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';
export const REGISTRY_ADDRESS = '127.0.0.1:5000';

function answersV2(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`http://${REGISTRY_ADDRESS}/v2/`, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
  });
}

export async function startRegistry(dir: string): Promise<Started> {
  if (await answersV2()) throw new Error(`something already serves a registry on ${REGISTRY_ADDRESS}`);
  const config = path.join(dir, 'registry.yml');
  await fsp.writeFile(config, [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'registry')}`,
    'http:',
    `  addr: ${REGISTRY_ADDRESS}`,
    '',
  ].join('\n'));
  const registry = startLogged(REGISTRY_BINARY, ['serve', config], path.join(dir, 'registry.log'));
  await waitUntil(`the registry on ${REGISTRY_ADDRESS}`, answersV2);
  return registry;
}
