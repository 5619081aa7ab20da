// Guided lessons (dashboard/lessons/player.py): lock the page's controls while a step is shown,
// unlock them for "Try it yourself", and outline the step's highlighted control.
(function () {
  // What a locked step makes inert: the pages' control groups and anything a user can edit.
  var LOCKED = '.content .controls, .content .toolbar, .content .control, .content .actions, ' +
               '.content .dropzone, .content .margin-controls, .content .liq-stress-controls, ' +
               '.content .ex-controls, .content .grid:has(.cell-editable), .content .lessons-editor';
  var wanted = null, tries = 0, timer = null;

  function setInert(on) {
    document.querySelectorAll(LOCKED).forEach(function (el) { el.inert = on; });
  }
  function reveal(el) {
    if (el.id !== wanted || !el.isConnected) return;
    var box = el.getBoundingClientRect();
    if (box.top < 0 || box.top > window.innerHeight * 0.6) el.scrollIntoView({block: 'start'});
  }
  function find() {
    document.querySelectorAll('[data-lesson-highlight]').forEach(function (el) {
      if (el.id !== wanted) el.removeAttribute('data-lesson-highlight');
    });
    if (!wanted) return true;
    var el = document.getElementById(wanted);
    if (!el) return false;
    // An attribute, not a class: React rewrites a component's class when it re-renders.
    if (!el.hasAttribute('data-lesson-highlight')) {
      el.setAttribute('data-lesson-highlight', '');
      // Look again while the charts above it finish drawing (they push it down as they grow).
      [0, 600, 1500, 3000].forEach(function (ms) { setTimeout(function () { reveal(el); }, ms); });
    }
    return true;
  }
  window.pmdashLessons = {
    lock: function () {
      document.body.classList.add('lesson-on', 'lesson-locked');
      setInert(true);
    },
    unlock: function () {
      document.body.classList.remove('lesson-locked');
      setInert(false);
    },
    stop: function () {
      document.body.classList.remove('lesson-on', 'lesson-locked');
      setInert(false);
      this.highlight(null);
    },
    // The element may not exist yet (its page is loading): look again for a few seconds.
    highlight: function (id) {
      wanted = id; tries = 0;
      clearInterval(timer);
      if (!find()) {
        timer = setInterval(function () { if (find() || ++tries > 40) clearInterval(timer); }, 200);
      }
      window.dispatchEvent(new Event('resize'));
    }
  };
  // Controls of a page shown while a step is locked are locked as they appear.
  new MutationObserver(function () {
    if (document.body && document.body.classList.contains('lesson-locked')) setInert(true);
    if (wanted) find();
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
