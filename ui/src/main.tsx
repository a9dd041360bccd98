import { render } from 'preact';
import './styles.css';
import { App } from './App';
import { ErrorBoundary } from './components/common';

const root = document.getElementById('root')!;

/** Last resort: an error outside any component still shows something, never a blank window. */
function showFatal(message: string) {
  if (document.getElementById('app-ready') || document.getElementById('startup')) return;
  const box = document.createElement('main');
  box.className = 'fatal';
  box.setAttribute('role', 'alert');
  const h = document.createElement('h1');
  h.textContent = "Quire's window could not start";
  const p = document.createElement('p');
  p.textContent = message;
  box.append(h, p);
  root.replaceChildren(box);
}

window.addEventListener('error', (e) => showFatal(e.message));
window.addEventListener('unhandledrejection', (e) => {
  // eslint-disable-next-line no-console
  console.error('Unhandled rejection', e.reason);
});

try {
  root.replaceChildren();
  render(
    <ErrorBoundary>
      <App />
    </ErrorBoundary>,
    root,
  );
} catch (e) {
  showFatal(e instanceof Error ? e.message : String(e));
}
