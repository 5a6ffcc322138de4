"""Published results in the graph, and reproductions of them."""
