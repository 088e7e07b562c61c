// The typed layer over the native addon: one function per verb, no policy.
export * as dm from './dm';
export * as thin from './thin';
export * as loop from './loop';
export * as blockdev from './blockdev';
export * as fs from './fs';
export * as mountinfo from './mountinfo';
