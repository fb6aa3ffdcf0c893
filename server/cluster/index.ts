export { LeaderLock, type LeaderLockOptions, type LeadershipListener } from './leader-lock.js';
export { LeaderDuties, type LeaderDuty } from './leader-duties.js';
