//! systemd notifications (`Type=notify`): READY once the config and the store are open,
//! `WATCHDOG=1` at a third of `WatchdogSec`, STATUS lines, RELOADING/STOPPING. Outside systemd
//! (`NOTIFY_SOCKET` unset) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "Cannot notify systemd.");
    }
}

pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub(crate) fn reloading() {
    send(&[
        NotifyState::Reloading,
        NotifyState::Status("reloading the config"),
    ]);
}

pub(crate) fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub(crate) fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// How often to ping the watchdog, when systemd asked for it (`WatchdogSec=`).
pub(crate) fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| (d / 3).max(Duration::from_millis(100)))
}

pub(crate) fn watchdog() {
    send(&[NotifyState::Watchdog]);
}
