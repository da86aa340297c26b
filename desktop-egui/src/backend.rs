//! The background runtime: every network call runs here, never on the UI thread. A finished
//! job sends its message over a channel and wakes the UI with `ctx.request_repaint()`; the UI
//! drains the channel at the start of each frame.

use std::future::Future;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use crate::api::Client;

/// Runs futures on a small tokio runtime of its own and delivers their results to the UI.
pub struct Backend<M> {
    // On drop the runtime is shut down in the background: the UI thread never waits for a
    // socket to close.
    runtime: Option<tokio::runtime::Runtime>,
    tx: mpsc::Sender<M>,
    rx: mpsc::Receiver<M>,
    /// The UI's context, known from the first frame on (tests and eframe create it).
    ctx: Arc<OnceLock<egui::Context>>,
    pub client: Client,
}

fn wake(ctx: &OnceLock<egui::Context>) {
    if let Some(ctx) = ctx.get() {
        ctx.request_repaint();
    }
}

impl<M: Send + 'static> Backend<M> {
    /// Its HTTP client trusting the public roots only.
    pub fn new() -> Self {
        Self::with_client(Client::new())
    }

    pub fn with_client(client: Client) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nexacore-net")
            .enable_all()
            .build()
            .expect("a tokio runtime can be built");
        let (tx, rx) = mpsc::channel();
        Self { runtime: Some(runtime), tx, rx, ctx: Arc::default(), client }
    }

    /// Tells the backend whom to wake; called every frame, only the first call counts.
    pub fn attach(&self, ctx: &egui::Context) {
        let _ = self.ctx.set(ctx.clone());
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Runs `job` in the background; its output reaches [`Backend::drain`] on a later frame.
    pub fn spawn(&self, job: impl Future<Output = M> + Send + 'static) {
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        self.runtime().spawn(async move {
            let message = job.await;
            // The app may be gone (closing): nobody to tell.
            let _ = tx.send(message);
            wake(&ctx);
        });
    }

    /// Runs `job` after `delay` (polls, debounced checks).
    pub fn spawn_after(&self, delay: Duration, job: impl Future<Output = M> + Send + 'static) {
        self.spawn(async move {
            tokio::time::sleep(delay).await;
            job.await
        });
    }

    /// Spawns a long-lived task that reports through `sink` (the WebSocket task).
    pub fn spawn_task(&self, task: impl Future<Output = ()> + Send + 'static) -> tokio::task::AbortHandle {
        self.runtime().spawn(task).abort_handle()
    }

    /// A sender for long-lived tasks: sends and wakes the UI.
    pub fn sink(&self) -> Sink<M> {
        Sink { tx: self.tx.clone(), ctx: self.ctx.clone() }
    }

    /// Every message that arrived since the last frame.
    pub fn drain(&self) -> Vec<M> {
        self.rx.try_iter().collect()
    }
}

impl<M: Send + 'static> Default for Backend<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> Drop for Backend<M> {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What a background task uses to reach the UI.
pub struct Sink<M> {
    tx: mpsc::Sender<M>,
    ctx: Arc<OnceLock<egui::Context>>,
}

impl<M> Clone for Sink<M> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone(), ctx: self.ctx.clone() }
    }
}

impl<M> Sink<M> {
    /// Sends and requests a repaint; false when the UI is gone.
    pub fn send(&self, message: M) -> bool {
        let ok = self.tx.send(message).is_ok();
        wake(&self.ctx);
        ok
    }
}
