"""Small offline model zoos used by the demo, the tests and the examples."""
