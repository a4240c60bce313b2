//! The sign-in page: username and password → `POST /api/auth/login`
//! through the client; errors are shown as text under the form.

import { h, setText } from './dom.js';

/** @param {{onSubmit: (u: string, p: string) => Promise<void>, message?: string}} opts */
export function signInPage({ onSubmit, message }) {
  const username = h('input', {
    id: 'signin-username', name: 'username', type: 'text', autocomplete: 'username', required: true,
    autocapitalize: 'none', spellcheck: 'false', 'data-testid': 'signin-username',
  });
  const password = h('input', {
    id: 'signin-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true,
    'data-testid': 'signin-password',
  });
  const submit = h('button', { type: 'submit', class: 'button primary wide', 'data-testid': 'signin-submit' }, 'Sign in');
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'signin-error', hidden: !message }, message || '');
  const form = h('form', { class: 'signin-form', 'data-testid': 'signin-form', novalidate: true },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Your robots, live: missions, alerts, commands and video.'),
    h('label', { for: 'signin-username' }, 'Username'), username,
    h('label', { for: 'signin-password' }, 'Password'), password,
    error,
    submit,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!username.value || !password.value) {
      showError('Enter your username and password.');
      return;
    }
    submit.disabled = true;
    setText(submit, 'Signing in…');
    try {
      await onSubmit(username.value.trim(), password.value);
    } catch (err) {
      showError(err && err.code === 'unauthorized'
        ? 'Wrong username or password.'
        : err && err.status === 429
          ? `Too many sign-in attempts. Try again${err.retryAfterS ? ` in ${err.retryAfterS} s` : ' later'}.`
          : err && err.code === 'network'
          ? 'The relay cannot be reached. Try again in a moment.'
          : `Sign-in failed: ${(err && err.message) || err}`);
      submit.disabled = false;
      setText(submit, 'Sign in');
    }
  });
  function showError(text) {
    setText(error, text);
    error.hidden = false;
  }
  queueMicrotask(() => username.focus());
  return h('section', { class: 'signin' }, form);
}
