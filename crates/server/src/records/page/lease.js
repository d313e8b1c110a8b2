// Keeps the edit lease of the record on this page alive while the form is open for editing:
// the server lets a lease lapse after a couple of minutes without renewal, so that a closed
// tab or a lost laptop never holds a record for long. Renewal stops with the page.
const form = document.querySelector("form[data-lease]");
if (form) {
  const csrf = form.querySelector('input[name="csrf"]').value;
  const every = Number(form.dataset.renewSeconds) * 1000;
  const note = document.getElementById("lock");
  const renew = async () => {
    const response = await fetch(form.dataset.lease, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      clearInterval(timer);
      if (note) {
        note.className = "error";
        note.textContent = answer.message ?? note.dataset.lost;
      }
      return;
    }
    if (note && answer.until) {
      note.textContent = note.dataset.template.replace("{until}", answer.until);
    }
  };
  const timer = setInterval(() => renew().catch(() => {}), every);
}
