// A POST over a unix socket, as dockerd makes it: JSON plus newline, no Content-Type.
import http from 'node:http';

export function postUnix(socketPath: string, method: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: `/${method}`, method: 'POST' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}') as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body === undefined ? '' : `${JSON.stringify(body)}\n`);
  });
}
