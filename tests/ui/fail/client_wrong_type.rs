use lock_runtime::{LockError, distribute_lock};

struct Service {
    redis_url: String,
}

impl Service {
    #[distribute_lock(key = "svc:{id}", client = self.redis_url)]
    async fn handle(&self, id: u64) -> Result<u64, LockError> {
        Ok(id)
    }
}

fn main() {
    let service = Service {
        redis_url: String::new(),
    };
    let _ = service.handle(1);
}
