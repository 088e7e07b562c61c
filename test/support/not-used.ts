// A stand-in for a dependency a suite never calls: any use fails loudly.
export function notUsed<T extends object>(what: string): T {
  return new Proxy({}, {
    get: (_target, prop) => () => {
      throw new Error(`${what}.${String(prop)} is not used by this suite`);
    },
  }) as T;
}
