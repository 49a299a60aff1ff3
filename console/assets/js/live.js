// live.js keeps a page current: a server-sent event stream where the
// server offers one, else polling every 5 s (SPEC §7).

export const POLL_MS = 5000;

// watch opens an EventSource on url. onEvent gets each message's parsed
// data; onEnd (optional) the data of an "end" event, after which the
// stream is done. When the stream cannot be kept (no EventSource, an
// error answer, a proxy that buffers), poll is called every 5 s instead.
// onMode (optional) hears which of the two is on: 'stream' once the
// stream is open, 'poll' once polling starts, so a page can say which.
// onDamaged (optional) gets a "damaged" event's data: a list stream's
// record the journal could not read.
// It returns a function that stops everything.
export function watch(url, { onEvent, onEnd, poll, onMode, onDamaged }) {
  let es = null;
  let timer = null;
  let stopped = false;
  const startPolling = () => {
    if (stopped || timer || !poll) return;
    timer = setInterval(() => {
      if (!document.hidden) poll();
    }, POLL_MS);
    onMode && onMode('poll');
  };
  if (typeof EventSource === 'undefined') {
    startPolling();
  } else {
    es = new EventSource(url, { withCredentials: true });
    es.onopen = () => onMode && onMode('stream');
    es.onmessage = (m) => {
      let data = null;
      try {
        data = JSON.parse(m.data);
      } catch (err) {
        return;
      }
      onEvent && onEvent(data, m.lastEventId);
    };
    es.addEventListener('damaged', (m) => {
      let data = null;
      try {
        data = JSON.parse(m.data);
      } catch (err) {
        return;
      }
      onDamaged && onDamaged(data);
    });
    es.addEventListener('end', (m) => {
      es.close();
      let data = null;
      try {
        data = JSON.parse(m.data);
      } catch (err) { /* an end without a record still ends */ }
      onEnd && onEnd(data);
    });
    es.onerror = () => {
      // CONNECTING: the browser retries by itself (Last-Event-ID); CLOSED:
      // it gave up, so poll.
      if (es.readyState === EventSource.CLOSED) startPolling();
    };
  }
  return () => {
    stopped = true;
    if (es) es.close();
    if (timer) clearInterval(timer);
  };
}

// liveText says how a list keeps current: a stream, or polling.
export function liveText(mode) {
  return mode === 'stream' ? 'Updates live.' : 'Updates every 5 s (no live stream).';
}

// debounce runs fn once calls stop coming for ms.
export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
