"""RunBudget: the bytes one run's source answers may take together."""

from concurrent.futures import ThreadPoolExecutor

from core.domain.aggregation.budget import RunBudget


def test_answers_are_admitted_until_the_next_does_not_fit():
    budget = RunBudget(1000)
    assert budget.admit(600)
    assert not budget.admit(500)  # past what is left: refused, and nothing taken
    assert budget.admit(400)  # a smaller later one still fits
    assert not budget.admit(1)
    assert budget.admit(0)  # a 204's null


def test_an_answer_larger_than_the_whole_budget_is_refused_alone():
    budget = RunBudget(100)
    assert not budget.admit(101)
    assert budget.admit(100)


def test_no_limit_admits_everything():
    assert RunBudget(None).admit(10**12)


def test_concurrent_calls_never_take_more_than_the_budget():
    budget = RunBudget(1000)
    with ThreadPoolExecutor(max_workers=8) as pool:
        admitted = list(pool.map(budget.admit, [10] * 500))
    assert admitted.count(True) == 100
