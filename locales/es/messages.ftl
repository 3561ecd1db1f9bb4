# Los mensajes de Parent Connection a las familias, en español.
# Cada mensaje existe también en inglés (locales/en) y al revés (pruebas: i18n::tests).
# Los nombres, los títulos y el texto de los maestros no se traducen.

## Listas y fechas

list-and = { $first } y { $last }
list-separator = {", "}

# Una hora de entrega en el resumen: "lun 23 nov, 8:00".
due-time = { $weekday } { $day } { $month }, { $time }
# La fecha del asunto del resumen: "23 nov 2026".
subject-date = { $day } { $month } { $year }
# Horas y minutos en reloj de 24 horas: "8:00".
clock = { $hour24 }:{ $minute }

weekday-1 = lun
weekday-2 = mar
weekday-3 = mié
weekday-4 = jue
weekday-5 = vie
weekday-6 = sáb
weekday-7 = dom

month-1 = ene
month-2 = feb
month-3 = mar
month-4 = abr
month-5 = may
month-6 = jun
month-7 = jul
month-8 = ago
month-9 = sept
month-10 = oct
month-11 = nov
month-12 = dic

## Invitaciones

invitation-subject = { $teacher } le invitó a Parent Connection
invitation-hello = Hola, { $guardian }:
invitation-invited = { $teacher } le invitó a conversar sobre { $student } en Parent Connection, el medio con el que { $district } comunica a los maestros con los padres y tutores de sus estudiantes.
invitation-join-here = Únase aquí:
invitation-ignore = Si no esperaba este mensaje, puede ignorarlo; no pasa nada hasta que se una.
invitation-guardian-fallback = familia
invitation-student-fallback = su hijo o hija
invitation-sms = { $sender }: { $teacher } le invitó a conversar sobre { $student }. Únase: { $link } Responda STOP para no recibir más mensajes.

## El resumen semanal

digest-subject = { $tenant }: tareas de { $children } (semana del { $date })
digest-hello = Hola, { $guardian }:
digest-intro = Estas son las tareas de { $children } en { $tenant }: lo que se debía entregar la semana
    pasada y lo que se debe entregar la próxima semana. Las horas están en { $zone }.
digest-due-past = Para entregar la semana pasada:
digest-due-coming = Para entregar la próxima semana:
digest-points = { $count ->
        [one] ({ $points } punto)
       *[other] ({ $points } puntos)
    }
digest-why = Recibe este resumen semanal porque es padre, madre o tutor de
    { $children } en { $tenant }. Las preguntas sobre una tarea van al maestro de la clase.
digest-stop = Para dejar de recibir este resumen semanal, abra este enlace y confirme (las invitaciones
    y los mensajes de los maestros no cambian):
