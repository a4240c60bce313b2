//! The WIM-Z relay client for apps: the entry module. Import from here
//! (`import { WimzClient } from './wimz.js'`); the sibling modules are its
//! parts, each owning one concept:
//!
//! | module | what it owns |
//! |---|---|
//! | `client.js` | `WimzClient`: token, the app socket and its reconnects, subscriptions, commands, REST |
//! | `device.js` | `DeviceSubscription`: one device's events, snapshot, callbacks and async iterators |
//! | `sequence.js` | `(epoch, seq)` de-duplication, gaps and epoch changes |
//! | `webrtc.js` | `VideoSession`: WebRTC through the relay, connection type, ICE restarts |
//! | `stats.js` | reading `getStats()` reports: selected pair, connection type, metrics |
//! | `quality.js` | `QualityMonitor`: thresholds with hysteresis → warnings |
//! | `backoff.js` | jittered exponential reconnect delays |
//! | `timers.js` | one-shot timers kept by name (injectable clock) |
//! | `token.js` | sign-in and token expiry |
//! | `errors.js` | `WimzError` and the SDK's error codes |
//! | `emitter.js` | the small event emitter they share, and `StateEmitter` |

export { WimzClient, CLIENT_DEFAULTS, relayBases } from './client.js';
export { DeviceSubscription } from './device.js';
export { EventSequence } from './sequence.js';
export { VideoSession, VIDEO_DEFAULTS, iceServersOf } from './webrtc.js';
export { connectionInfo, extractMetrics, selectedCandidatePair, statsList } from './stats.js';
export { QualityMonitor, QUALITY_DEFAULTS, QUALITY_METRICS } from './quality.js';
export { Backoff, BACKOFF_DEFAULTS } from './backoff.js';
export { login, tokenExpiresAtMs } from './token.js';
export { WimzError, ErrorCode } from './errors.js';
export { Emitter } from './emitter.js';
