// Listens on DMTHIN_SOCKET at once, when loaded (the managed plugin's
// entrypoint preloads it with `node --require`, before the rest of
// dmthin): see listenEarly. Whatever stops it (something
// already at the socket path, say), main's own listenOnSocket deals with.
import { listenEarly } from './listen';

const socketPath = process.env['DMTHIN_SOCKET'];
if (socketPath !== undefined && socketPath.startsWith('/')) listenEarly(socketPath);
