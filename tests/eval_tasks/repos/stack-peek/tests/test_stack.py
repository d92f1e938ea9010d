from stack import Stack


class TestStack:
    def test_push_pop(self):
        s = Stack()
        s.push(1)
        assert s.pop() == 1
