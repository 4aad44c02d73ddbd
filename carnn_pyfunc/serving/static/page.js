// carnn's page: posts the form to /invocations and a CSV file to /score.csv, like any client,
// and shows the API's own errors next to their fields. Plain JavaScript, no framework.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const predictForm = $("predict-form");
  const csvForm = $("csv-form");
  const litresFactor = Number(document.body.dataset.litresFactor);

  function headers(contentType) {
    const result = { "Content-Type": contentType, Accept: "application/json, text/csv" };
    const token = $("token");
    if (token && token.value.trim()) result.Authorization = "Bearer " + token.value.trim();
    return result;
  }

  function clearErrors(form, general) {
    for (const slot of form.querySelectorAll(".error")) slot.textContent = "";
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    general.textContent = "";
    if ($("token-error")) {
      $("token-error").textContent = "";
      $("token").removeAttribute("aria-invalid");
    }
  }

  // Show a message in the slot next to input `id`; returns false when the page has no such field.
  function showAt(id, message) {
    const input = $(id);
    const slot = $(id + "-error");
    if (!input || !slot) return false;
    slot.textContent = slot.textContent ? slot.textContent + " " + message : message;
    input.setAttribute("aria-invalid", "true");
    return true;
  }

  function describe(problem) {
    if (problem.value === null || problem.value === undefined) {
      return "Missing: expected " + problem.expected + ".";
    }
    return "Has " + problem.value + ": expected " + problem.expected + ".";
  }

  // The API's error body: {error_code, message, errors: [{row, field, expected, value}]}.
  async function errorOf(response) {
    try {
      const body = await response.json();
      if (body && typeof body.message === "string") return body;
    } catch (err) {
      // not the API's JSON (a proxy's page, say): described by its status below
    }
    return { message: "The service answered " + response.status + " " + response.statusText + ".", errors: [] };
  }

  // A 401 belongs to the token field, when the page has one.
  function showUnauthorised(response, body) {
    if (response.status !== 401 || !showAt("token", body.message)) return false;
    $("token").focus();
    return true;
  }

  async function send(path, body, contentType, general) {
    try {
      return await fetch(path, { method: "POST", headers: headers(contentType), body: body });
    } catch (err) {
      general.textContent = "The service did not answer (" + err.message + "). Is it running?";
      return null;
    }
  }

  function record() {
    const car = {};
    const unreadable = [];
    for (const input of predictForm.querySelectorAll("[data-field]")) {
      const name = input.dataset.field;
      const raw = input.value.trim();
      if (input.validity && input.validity.badInput) unreadable.push(input);
      else if (raw === "") continue; // left out: the API names it if it is required
      else car[name] = input.dataset.kind === "text" ? raw : Number(raw);
    }
    return { car: car, unreadable: unreadable };
  }

  predictForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const general = $("predict-error");
    const button = predictForm.querySelector("button[type=submit]");
    clearErrors(predictForm, general);
    $("answer").hidden = true;
    const { car, unreadable } = record();
    if (unreadable.length) {
      for (const input of unreadable) {
        showAt(input.id, "Not a number: expected " + input.dataset.expected + ".");
      }
      unreadable[0].focus();
      return;
    }
    button.disabled = true;
    try {
      const payload = JSON.stringify({ dataframe_records: [car], params: { interval: 0.9 } });
      const response = await send("/invocations", payload, "application/json", general);
      if (!response) return;
      if (!response.ok) {
        const body = await errorOf(response);
        if (showUnauthorised(response, body)) return;
        const placed = (body.errors || []).filter((p) => showAt(p.field, describe(p)));
        if (placed.length) $(placed[0].field).focus();
        else general.textContent = body.message;
        return;
      }
      const answer = (await response.json()).predictions[0];
      const mpg = answer.mpg;
      $("mpg").textContent = mpg.toFixed(1);
      $("litres").textContent = (litresFactor / mpg).toFixed(1);
      $("mpg-low").textContent = answer.mpg_low.toFixed(1);
      $("mpg-high").textContent = answer.mpg_high.toFixed(1);
      $("answer").hidden = false;
    } finally {
      button.disabled = false;
    }
  });

  let downloadUrl = null;
  csvForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const general = $("csv-summary");
    const link = $("csv-download");
    const button = csvForm.querySelector("button[type=submit]");
    clearErrors(csvForm, general);
    link.hidden = true;
    const file = $("csv-file").files[0];
    if (!file) {
      showAt("csv-file", "Choose a CSV file first.");
      $("csv-file").focus();
      return;
    }
    button.disabled = true;
    try {
      const response = await send("/score.csv", file, "text/csv", general);
      if (!response) return;
      if (!response.ok) {
        // a whole-table problem (a missing column, an unreadable file) belongs to the file
        const body = await errorOf(response);
        if (!showUnauthorised(response, body)) showAt("csv-file", body.message);
        return;
      }
      const text = await response.text();
      const rows = Number(response.headers.get("X-Carnn-Rows"));
      const failed = Number(response.headers.get("X-Carnn-Failed"));
      general.textContent =
        rows + (rows === 1 ? " row" : " rows") + " scored: " + (rows - failed) + " with an MPG, " +
        failed + " failed validation" + (failed ? " (see their error column)." : ".");
      if (downloadUrl) URL.revokeObjectURL(downloadUrl);
      downloadUrl = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      link.href = downloadUrl;
      link.download = file.name.replace(/\.csv$/i, "") + "-mpg.csv";
      link.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
})();
