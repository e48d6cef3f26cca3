//! Lingering close: when the server ends a connection, it reads and discards what the client is still
//! sending for a moment before closing, so that an answer given before the request body was read (a 503
//! from the admission limit, a 401, a 413) reaches the client instead of being destroyed by a reset.
//!
//! Closing a TCP socket whose receive buffer holds unread bytes makes the kernel send RST, and a client
//! that gets RST while still uploading loses the answer waiting in its own buffer: it sees "connection
//! reset" or "broken pipe" instead of a status. nginx solves this with `lingering_close`; this is the
//! same idea, bounded the same way (a wait between reads and a total).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The longest wait for more bytes from the client while lingering.
const LINGER_IDLE: Duration = Duration::from_secs(2);
/// The longest a connection lingers in all, however steadily its client keeps sending.
const LINGER_TOTAL: Duration = Duration::from_secs(10);

/// A stream whose `poll_shutdown` sends FIN, then drains the client's remaining bytes until it closes its
/// side, goes quiet for [`LINGER_IDLE`], or [`LINGER_TOTAL`] has passed. Reads and writes pass through.
pub(crate) struct LingeringClose<S> {
    inner: S,
    linger: Option<Linger>,
}

/// The drain's state, from the moment the write side was shut down.
struct Linger {
    ends: Instant,
    idle: Pin<Box<Sleep>>,
}

impl<S> LingeringClose<S> {
    pub(crate) fn new(inner: S) -> Self {
        LingeringClose { inner, linger: None }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for LingeringClose<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LingeringClose<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.linger.is_none() {
            // FIN first: the client now has the whole answer and sees the end of it.
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            let now = Instant::now();
            this.linger = Some(Linger {
                ends: now + LINGER_TOTAL,
                idle: Box::pin(tokio::time::sleep_until(now + LINGER_IDLE)),
            });
        }
        let linger = this.linger.as_mut().expect("set above");
        let mut scratch = [0u8; 16 * 1024];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                // The client closed its side (or the connection failed): nothing more can be reset.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    let now = Instant::now();
                    if now >= linger.ends {
                        return Poll::Ready(Ok(()));
                    }
                    linger.idle.as_mut().reset((now + LINGER_IDLE).min(linger.ends));
                }
                Poll::Pending => {
                    // Registered for more bytes; give up once the client has been quiet too long.
                    ready!(linger.idle.as_mut().poll(cx));
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A server that answers before reading an 8 MB upload: with lingering close the client still reads
    /// the answer; with a plain close its upload fails (the case this module exists for).
    async fn early_answer(linger: bool) -> io::Result<Vec<u8>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await?;
            let mut head = [0u8; 64];
            let mut stream = LingeringClose::new(stream);
            stream.read_exact(&mut head).await?;
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await?;
            if linger {
                stream.shutdown().await?;
            }
            io::Result::Ok(())
        });
        let mut client = TcpStream::connect(addr).await?;
        let upload = vec![b'x'; 8 << 20];
        client.write_all(&upload).await?;
        client.shutdown().await?;
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await?;
        server.await.expect("the server task does not panic")?;
        Ok(answer)
    }

    #[tokio::test]
    async fn an_early_answer_reaches_a_client_that_is_still_uploading() {
        let answer = early_answer(true).await.expect("the client reads the answer");
        assert!(
            answer.starts_with(b"HTTP/1.1 503"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        // Without the linger the same exchange breaks: this is what the test is protecting.
        assert!(early_answer(false).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_closes_is_let_go_after_the_idle_wait() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let _client = TcpStream::connect(listener.local_addr().expect("bound"))
            .await
            .expect("connects");
        let (stream, _) = listener.accept().await.expect("accepts");
        let started = Instant::now();
        LingeringClose::new(stream).shutdown().await.expect("shuts down");
        assert_eq!(started.elapsed(), LINGER_IDLE);
    }
}
