/* Workspaces in the browser (dashboard/workspaces/web.py explains the stores):
 *  - a random workspace key for this browser (local storage, made once);
 *  - autosave: the tab's state entries of session storage copied to local storage, and a new
 *    tab seeded from that copy before Dash starts, so it opens the last state, not the demo;
 *  - loading a document: write its stores and controls into session storage, then reload;
 *  - undo / redo buttons state and the Ctrl+Z / Ctrl+Y keys.
 * This file runs before the Dash renderer (Dash loads assets first), which the seeding needs. */
(function () {
  "use strict";
  // Must equal dashboard.workspaces.payload.PAYLOAD_VERSION (checked by a test).
  var PAYLOAD_VERSION = 2;
  // The session stores holding the state, and the current-workspace note (checked by a test).
  var STATE_KEYS = ["store-book", "store-market", "store-settings", "account-store", "liq-stress-store",
                    "liq-params-store", "liq-path-store", "ex-settings-store", "ex-upload-store", "ws-current"];
  var PERSISTENCE_PREFIX = "_dash_persistence.";
  var AUTOSAVE_KEY = "pmdash-autosave";
  var TAB_KEY = "pmdash-tab";
  var OWNER_KEY = "ws-owner";
  var RESTORE_KEY = "ws-restore";
  var AUTOSAVE_EVERY_MS = 3000;

  function randomKey() {
    var bytes = new Uint8Array(18);
    window.crypto.getRandomValues(bytes);
    return btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_");
  }

  function sessionEntries() {
    var items = {};
    for (var i = 0; i < window.sessionStorage.length; i++) {
      var key = window.sessionStorage.key(i);
      if (STATE_KEYS.indexOf(key) >= 0 || key.indexOf(PERSISTENCE_PREFIX) === 0) {
        items[key] = window.sessionStorage.getItem(key);
      }
    }
    return items;
  }

  var lastSaved = null;
  function autosave() {
    try {
      var items = sessionEntries();
      if (!items["store-book"]) { return; }  // nothing built in this tab yet
      var text = JSON.stringify({version: PAYLOAD_VERSION, items: items});
      if (text !== lastSaved) {
        window.localStorage.setItem(AUTOSAVE_KEY, JSON.stringify({version: PAYLOAD_VERSION, items: items,
                                                                  saved: new Date().toISOString()}));
        lastSaved = text;
      }
    } catch (e) { /* storage full or disabled: the tab keeps working without autosave */ }
  }

  function seedNewTab() {
    if (window.sessionStorage.getItem(TAB_KEY)) { return; }  // a reload of this tab
    window.sessionStorage.setItem(TAB_KEY, "1");
    if (window.sessionStorage.getItem("store-book")) { return; }  // a duplicated tab has its own
    var saved = null;
    try { saved = JSON.parse(window.localStorage.getItem(AUTOSAVE_KEY)); } catch (e) { saved = null; }
    if (!saved || !saved.items) { return; }
    if (saved.version !== PAYLOAD_VERSION) {
      // Written by another version: the server upgrades and checks it (web.restore_autosave).
      window.sessionStorage.setItem(RESTORE_KEY, JSON.stringify({version: saved.version, items: saved.items}));
      return;
    }
    Object.keys(saved.items).forEach(function (key) {
      if (STATE_KEYS.indexOf(key) >= 0 || key.indexOf(PERSISTENCE_PREFIX) === 0) {
        window.sessionStorage.setItem(key, saved.items[key]);
      }
    });
  }

  try {
    if (!window.localStorage.getItem(OWNER_KEY)) {
      window.localStorage.setItem(OWNER_KEY, JSON.stringify(randomKey()));
    }
    seedNewTab();
    window.setInterval(autosave, AUTOSAVE_EVERY_MS);
    window.addEventListener("pagehide", autosave);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") { autosave(); }
    });
  } catch (e) { /* storage disabled (private mode): the app still runs, without persistence */ }

  function editing(target) {
    if (!target) { return false; }
    var tag = (target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable ||
      (target.closest && target.closest(".ag-cell-inline-editing"));
  }

  document.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey) || event.altKey || editing(event.target)) { return; }
    var key = (event.key || "").toLowerCase();
    var id = key === "z" && !event.shiftKey ? "ws-undo" : (key === "y" || (key === "z" && event.shiftKey)) ? "ws-redo" : null;
    var button = id && document.getElementById(id);
    if (button) {
      event.preventDefault();
      if (!button.disabled) { button.click(); }
    }
  });

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    pmdashWorkspaces: {
      historyButtons: function (history) {
        var past = history && history.past ? history.past.length : 0;
        var future = history && history.future ? history.future.length : 0;
        return [past === 0, future === 0,
                "Undo (Ctrl+Z): " + past + " step" + (past === 1 ? "" : "s") + " back",
                "Redo (Ctrl+Y): " + future + " step" + (future === 1 ? "" : "s") + " forward"];
      },
      gather: function () {
        // The page stores' current values (their pages may not be shown): from session storage.
        var ctx = window.dash_clientside.callback_context;
        var storeIds = arguments[arguments.length - 1] || [];
        var action = ctx.triggered_id;
        if (!action || !ctx.triggered.length || !ctx.triggered[0].value) { return window.dash_clientside.no_update; }
        var pages = {};
        storeIds.forEach(function (id) {
          var raw = window.sessionStorage.getItem(id);
          pages[id] = raw === null ? null : JSON.parse(raw);
        });
        return {action: action, at: Date.now(), pages: pages};
      },
      load: function (pkg) {
        if (!pkg || !pkg.stores) { return window.dash_clientside.no_update; }
        var storage = window.sessionStorage;
        var doomed = [];
        for (var i = 0; i < storage.length; i++) {
          if (storage.key(i).indexOf(PERSISTENCE_PREFIX) === 0) { doomed.push(storage.key(i)); }
        }
        doomed.forEach(function (key) { storage.removeItem(key); });
        Object.keys(pkg.persistence || {}).forEach(function (key) {
          storage.setItem(key, JSON.stringify(pkg.persistence[key]));
        });
        Object.keys(pkg.stores).forEach(function (id) {
          if (pkg.stores[id] === null) {
            storage.removeItem(id);
          } else {
            storage.setItem(id, JSON.stringify(pkg.stores[id]));
          }
          storage.setItem(id + "-timestamp", String(Date.now()));
        });
        autosave();
        window.location.replace(pkg.target || "/");
        return window.dash_clientside.no_update;
      }
    }
  });
}());
