// Full screen for any chart: a ⛶ button on every dcc.Graph; the figure is resized to the screen
// while full screen and restored after (presenter mode, dashboard/presentation.py).
(function () {
  function fit(graph) {
    var plot = graph.querySelector('.js-plotly-plot');
    if (!plot || !window.Plotly) return;
    if (document.fullscreenElement === graph) {
      plot.dataset.height = plot.layout && plot.layout.height || '';
      Plotly.relayout(plot, {height: window.screen.height - 40, width: window.screen.width - 40});
    } else if (plot.dataset.height !== undefined) {
      Plotly.relayout(plot, {height: Number(plot.dataset.height) || null, width: null, autosize: true});
      delete plot.dataset.height;
    }
  }
  function decorate(graph) {
    if (graph.querySelector(':scope > .fullscreen-button')) return;
    var button = document.createElement('button');
    button.className = 'fullscreen-button';
    button.type = 'button';
    button.title = 'Full screen (Esc to leave)';
    button.textContent = '⛶';
    button.addEventListener('click', function () {
      if (document.fullscreenElement) document.exitFullscreen(); else graph.requestFullscreen();
    });
    graph.style.position = 'relative';
    graph.appendChild(button);
    graph.addEventListener('fullscreenchange', function () { fit(graph); });
  }
  new MutationObserver(function () {
    document.querySelectorAll('.dash-graph').forEach(decorate);
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
