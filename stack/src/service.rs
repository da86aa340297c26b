//! A service serving on its own task, stopped by [`ControlPlaneHandle::stop`] /
//! [`RouterHandle::stop`] or when its handle is dropped.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::StackError;

struct Serving {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Serving {
    fn spawn<F>(run: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F) -> Self
    where
        F: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        // A dropped sender resolves `stopped` too: a handle dropped without `stop` still stops.
        let task = tokio::spawn(run(Box::pin(async move {
            let _ = stopped.await;
        })));
        Self { stop: Some(stop), task: Some(task) }
    }

    async fn stop(&mut self) -> Result<(), StackError> {
        self.stop.take().map(|s| s.send(()));
        match self.task.take() {
            Some(task) => task.await.map_err(|_| StackError::Panicked)?.map_err(StackError::Serve),
            None => Ok(()),
        }
    }

    /// Waits until the service stops by itself (its own shutdown signal) or fails.
    async fn finished(&mut self) -> Result<(), StackError> {
        match self.task.take() {
            Some(task) => task.await.map_err(|_| StackError::Panicked)?.map_err(StackError::Serve),
            None => Ok(()),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop.take().map(|s| s.send(()));
    }
}

/// The control plane, serving.
pub struct ControlPlaneHandle {
    pub url: String,
    pub spare_pool: Arc<control_plane::provision::spares::SparePool>,
    serving: Serving,
}

impl ControlPlaneHandle {
    pub(crate) fn serve(app: control_plane::App) -> Self {
        let url = format!("{}://127.0.0.1:{}", app.scheme(), app.port());
        let spare_pool = app.spare_pool();
        Self { url, spare_pool, serving: Serving::spawn(|stopped| app.run_until_stopped(stopped)) }
    }

    /// Stops accepting, lets in-flight requests finish, and reports how serving ended.
    pub async fn stop(mut self) -> Result<(), StackError> {
        self.serving.stop().await
    }

    pub(crate) async fn finished(&mut self) -> Result<(), StackError> {
        self.serving.finished().await
    }

    pub(crate) async fn stop_serving(&mut self) -> Result<(), StackError> {
        self.serving.stop().await
    }
}

/// One tenant-router replica, serving.
pub struct RouterHandle {
    pub url: String,
    /// The router's state, for tests and benchmarks that read its counters and caches.
    pub state: Arc<tenant_router::AppState>,
    serving: Serving,
}

impl RouterHandle {
    /// A replica built from `config` alone, outside any [`crate::Platform`]: for a process
    /// that holds nothing but a router (the router benchmark's memory probe).
    pub async fn start(config: tenant_router::Config) -> Result<Self, StackError> {
        Ok(Self::serve(tenant_router::App::build(config).await?))
    }

    pub(crate) fn serve(app: tenant_router::App) -> Self {
        let url = format!("{}://127.0.0.1:{}", app.scheme(), app.port());
        let state = app.state();
        Self { url, state, serving: Serving::spawn(|stopped| app.run_until_stopped(stopped)) }
    }

    pub async fn stop(mut self) -> Result<(), StackError> {
        self.serving.stop().await
    }

    pub(crate) async fn finished(&mut self) -> Result<(), StackError> {
        self.serving.finished().await
    }

    pub(crate) async fn stop_serving(&mut self) -> Result<(), StackError> {
        self.serving.stop().await
    }
}
