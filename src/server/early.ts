// Listens on DMTHIN_SOCKET at once, when loaded (by src/plugin.ts, before
// the rest of dmthin): see listenEarly. Whatever stops it (something
// already at the socket path, say), main's own listenOnSocket deals with.
import { listenEarly } from './listen';

const socketPath = process.env['DMTHIN_SOCKET'];
if (socketPath !== undefined && socketPath.startsWith('/')) listenEarly(socketPath);
